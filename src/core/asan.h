/* Manual poisoning for memory wsgate manages itself (buffer slabs, object
 * pools): in AddressSanitizer builds a use of a buffer or object after it
 * went back to its pool is reported; elsewhere these compile to nothing. */
#ifndef WSG_CORE_ASAN_H
#define WSG_CORE_ASAN_H

#if defined(__SANITIZE_ADDRESS__)
#define WSG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WSG_ASAN 1
#endif
#endif

#ifdef WSG_ASAN
#include <sanitizer/asan_interface.h>
#define ASAN_POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define ASAN_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define ASAN_POISON(p, n)   ((void)(p), (void)(n))
#define ASAN_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#endif
