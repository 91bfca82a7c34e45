"""The aiobotocore view of the same engine: async sessions (aiobotocore's, aioboto3's, s3fs's)
get the process-wide credentials that sync sessions of equal settings get.

Nothing here imports aiobotocore until an aiobotocore session is seen: ``registration`` only
teaches ``install()``/``register()`` to recognise one by its class in ``sys.modules``.
"""
