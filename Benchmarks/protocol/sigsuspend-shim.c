// sigsuspend-shim: lets valgrind 3.19 run the sidecar. libdispatch's main thread (dispatchMain) calls sigsuspend with
// a mask in read-only memory; valgrind's syscall wrapper edits the mask in place and dies with SIGSEGV ("the
// 'impossible' happened"). Preloaded (LD_PRELOAD), this passes a writable copy instead. For profiling only.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>

int sigsuspend(const sigset_t *mask) {
  static int (*real)(const sigset_t *);
  if (!real) real = (int (*)(const sigset_t *))dlsym(RTLD_NEXT, "sigsuspend");
  sigset_t copy = *mask;
  return real(&copy);
}
