/* liburing for Swift. liburing.h defines _XOPEN_SOURCE and _GNU_SOURCE when they are not set,
   which changes fd_set's member names; <sys/select.h> included first keeps the one definition
   that agrees with the Glibc and Dispatch modules. */
#include <sys/select.h>
#include <liburing.h>
