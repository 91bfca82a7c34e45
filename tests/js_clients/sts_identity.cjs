// STS GetCallerIdentity with the AWS JavaScript SDK v3, for tests/test_server_clients.py.
//
//   node sts_identity.cjs ENDPOINT REGION default|container-metadata
//
// default: the SDK's own default credential chain, which reaches the container provider
// (fromHttp: AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE,
// re-read at every fetch) when nothing before it in the chain has credentials.
// container-metadata: fromContainerMetadata, the provider the default chain used alone
// before fromHttp existed; it reads only AWS_CONTAINER_AUTHORIZATION_TOKEN (the value),
// like the AWS CLI v2 before 2.15 and the Go SDK v2 of late 2023.
// Prints {"Account", "Arn"} on success; the error's name and message on stderr otherwise.
"use strict";

const { STSClient, GetCallerIdentityCommand } = require("@aws-sdk/client-sts");
const { fromContainerMetadata } = require("@smithy/credential-provider-imds");

async function main() {
  const [endpoint, region, chain] = process.argv.slice(2);
  const options = { endpoint, region, maxAttempts: 1 };
  if (chain === "container-metadata") {
    options.credentials = fromContainerMetadata({ timeout: 10000, maxRetries: 0 });
  } else if (chain !== "default") {
    throw new Error(`unknown chain ${chain}`);
  }
  const identity = await new STSClient(options).send(new GetCallerIdentityCommand({}));
  process.stdout.write(JSON.stringify({ Account: identity.Account, Arn: identity.Arn }) + "\n");
}

main().catch((error) => {
  process.stderr.write(`${error.name}: ${error.message}\n`);
  process.exit(1);
});
