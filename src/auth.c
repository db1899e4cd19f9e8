#include "auth.h"

#include <string.h>

int auth_bearer_ok(const char *value, size_t len, const char *token)
{
	size_t tn = strlen(token);
	if (!value || tn == 0 || len != 7 + tn || memcmp(value, "Bearer ", 7) != 0)
		return 0;
	unsigned diff = 0;
	for (size_t i = 0; i < tn; i++)
		diff |= (unsigned char)(value[7 + i] ^ token[i]);
	return diff == 0;
}
