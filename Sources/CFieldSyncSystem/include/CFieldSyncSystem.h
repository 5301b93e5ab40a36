#ifndef CFIELDSYNC_SYSTEM_H
#define CFIELDSYNC_SYSTEM_H

#include <sys/types.h>

/// Makes the process non-dumpable (no core file, no ptrace attach by the same user): prctl is
/// variadic, so Swift cannot call it directly.
int fieldsync_set_nondumpable(void);

/// The uid of the peer of a connected Unix socket (SO_PEERCRED), or -1.
long fieldsync_peer_uid(int fd);

#endif
