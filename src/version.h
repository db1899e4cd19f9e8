/* The version string, set by the build (-DSHARDID_VERSION=...); "dev" when
 * built without one. */
#ifndef VERSION_H
#define VERSION_H

#ifndef SHARDID_VERSION
#define SHARDID_VERSION "dev"
#endif

#endif
