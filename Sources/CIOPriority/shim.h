// ioprio_set(2) and ioprio_get(2) have no glibc wrapper, and syscall(2) is variadic, which Swift cannot call.
#include <sys/syscall.h>
#include <unistd.h>

// IOPRIO_WHO_PROCESS with 0: the calling thread.
static inline int outlaw_ioprio_set_self(int ioprio) {
    return (int)syscall(SYS_ioprio_set, 1, 0, ioprio);
}

static inline int outlaw_ioprio_get_self(void) {
    return (int)syscall(SYS_ioprio_get, 1, 0);
}
