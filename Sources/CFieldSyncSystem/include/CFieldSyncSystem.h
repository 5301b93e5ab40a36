#ifndef CFIELDSYNC_SYSTEM_H
#define CFIELDSYNC_SYSTEM_H

#include <sys/types.h>
#include <spawn.h>

/// Makes the process non-dumpable (no core file, no ptrace attach by the same user): prctl is
/// variadic, so Swift cannot call it directly.
int fieldsync_set_nondumpable(void);

/// The uid of the peer of a connected Unix socket (SO_PEERCRED), or -1.
long fieldsync_peer_uid(int fd);

/// Adds "close every descriptor from `fd` up" to a posix_spawn's actions (glibc's
/// posix_spawn_file_actions_addclosefrom_np, which needs _GNU_SOURCE).
int fieldsync_spawn_close_from(posix_spawn_file_actions_t *actions, int fd);

#endif
