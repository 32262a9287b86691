"""The OSS/BSS: the client interface the steps call (client.py), its errors (errors.py: transient ones are retried,
permanent ones are not) and the fake (fake.py), whose tables `usergroup db upgrade` migrates beside the store's."""
