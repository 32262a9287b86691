"""The SCIM resources we write: `Group`, and `User` with our extension (the age SCIM's core schema lacks)."""

from scim2_models import URN, Extension, Group, ResourceType, ScimProvider, User


class UserGroupUser(Extension):
    """What a User carries beyond SCIM's core schema (its affiliation is the core `userType`)."""

    __schema__ = URN("urn:usergroup:params:scim:schemas:extension:2.0:User")

    age: int | None = None


ScimUser = User[UserGroupUser]
RESOURCES = (ScimUser, Group)


def provider() -> ScimProvider:
    """The peer as the client knows it: the resources it writes, each at its standard endpoint."""
    return ScimProvider(models=[User, UserGroupUser, Group],
                        resource_types=[ResourceType.from_resource(ScimUser), ResourceType.from_resource(Group)])
