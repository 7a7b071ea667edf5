// libc functions that Swift's Glibc module hides behind _GNU_SOURCE.
#include <spawn.h>

#ifdef __linux__
// glibc >= 2.29; declared here because the Glibc module is built without _GNU_SOURCE.
extern int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *actions, const char *path);
#endif

#include <fcntl.h>
#include <unistd.h>

#ifdef __linux__
#ifndef F_OFD_SETLK
#define F_OFD_SETLK 37
#endif
#ifndef F_OFD_SETLKW
#define F_OFD_SETLKW 38
#endif
// Open-file-description byte-range locks (Linux >= 3.15): one byte per cache key in one file.
// Like flock they belong to an open file and vanish when the process dies; unlike a lock file
// per key they cost no inode per key. Returns 0, or -1 with errno (EAGAIN/EACCES: held).
static inline int repro_ofd_lock(int fd, long long offset, int wait, int unlock) {
    struct flock fl = {0};
    fl.l_type = unlock ? F_UNLCK : F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = offset;
    fl.l_len = 1;
    fl.l_pid = 0;
    return fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
}
#endif

#ifdef __linux__
#include <malloc.h>
// Buffers of at least `bytes` are mapped, and given back to the system when freed (glibc
// otherwise raises this threshold each time such a buffer is freed).
static inline void repro_fixed_mmap_threshold(int bytes) { mallopt(M_MMAP_THRESHOLD, bytes); }
#endif

#include <stdio.h>
// snprintf of one double: Swift cannot call variadic C functions, and its va_list bridge
// (withVaList) costs type-metadata lookups on first use.
static inline int repro_format_double(char *buf, size_t size, const char *format, double value) {
    return snprintf(buf, size, format, value);
}
