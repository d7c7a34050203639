/* liburing for Swift. No _GNU_SOURCE here: with Swift 6.3's Glibc module it makes fd_set's
   member names differ between the two modules and the import fails. */
#include <liburing.h>
