"""The OSS/BSS over SCIM 2.0 (RFC 7643/7644): a User Group is a SCIM `Group`, a User a SCIM `User` in it."""
