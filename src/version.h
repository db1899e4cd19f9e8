/* The version and the git commit, set by the build (-DSHARDID_VERSION=...,
 * -DSHARDID_COMMIT=...; scripts/release passes the top-level VERSION file and
 * `git rev-parse`); "dev" and "unknown" when built without them. */
#ifndef VERSION_H
#define VERSION_H

#ifndef SHARDID_VERSION
#define SHARDID_VERSION "dev"
#endif
#ifndef SHARDID_COMMIT
#define SHARDID_COMMIT "unknown"
#endif

#endif
