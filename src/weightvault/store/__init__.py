"""Object storage: the embedded SeaweedFS server and the S3 client wrapper."""
