/* Bearer-token check for the admin routes (SPEC section 4). Pure. */
#ifndef AUTH_H
#define AUTH_H
#include <stddef.h>

/* 1 when an Authorization header value is exactly "Bearer <token>". Takes
 * the same time whatever bytes of the token differ, so a remote client
 * cannot guess it byte by byte. value may be NULL (no header); an empty
 * token matches nothing. */
int auth_bearer_ok(const char *value, size_t len, const char *token);

#endif
