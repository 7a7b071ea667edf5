#ifndef REPRO_FAST_INIT_H
#define REPRO_FAST_INIT_H
// Referenced from Swift so the linker keeps fast_init.c's object in the executable.
int repro_git_fast_init_linked(void);
#endif
