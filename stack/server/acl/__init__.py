"""ACL as Redis 6/7: users, selectors, permission checks, the ACL log and the ACL file.

``catalog`` (command ids and category masks from the command table), ``selector`` (command,
key and channel rules), ``user`` (passwords, on/off, selectors), ``denial_log`` (ACL LOG),
``aclfile`` (ACL LOAD / SAVE) and ``access`` (the server's users and logins). See docs/acl.md.
"""

from .access import AccessControl
from .user import User

__all__ = ["AccessControl", "User"]
