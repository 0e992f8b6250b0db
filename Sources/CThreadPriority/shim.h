// A thread's own CPU and disk priority: ioprio_set(2) and ioprio_get(2) have no glibc wrapper (and syscall(2) is
// variadic, which Swift cannot call); SCHED_IDLE is only declared under _GNU_SOURCE.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

// IOPRIO_WHO_PROCESS with 0: the calling thread.
static inline int outlaw_ioprio_set_self(int ioprio) {
    return (int)syscall(SYS_ioprio_set, 1, 0, ioprio);
}

static inline int outlaw_ioprio_get_self(void) {
    return (int)syscall(SYS_ioprio_get, 1, 0);
}

// SCHED_IDLE for the calling thread (pid 0): any thread may lower itself to it (sched(7)).
static inline int outlaw_sched_idle_self(void) {
    struct sched_param param = { .sched_priority = 0 };
    return sched_setscheduler(0, SCHED_IDLE, &param);
}

static inline int outlaw_sched_policy_self(void) {
    return sched_getscheduler(0);
}

static inline int outlaw_sched_idle_policy(void) {
    return SCHED_IDLE;
}
