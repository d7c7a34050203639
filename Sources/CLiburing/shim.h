/* liburing for Swift: _GNU_SOURCE first, or Glibc's fd_set clashes with the Swift Glibc module. */
#define _GNU_SOURCE 1
#include <liburing.h>
