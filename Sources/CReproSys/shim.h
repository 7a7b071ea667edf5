// libc functions that Swift's Glibc module hides behind _GNU_SOURCE.
#include <spawn.h>

#ifdef __linux__
// glibc >= 2.29; declared here because the Glibc module is built without _GNU_SOURCE.
extern int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *actions, const char *path);
#endif
