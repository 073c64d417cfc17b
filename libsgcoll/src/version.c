// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sgc_version(): the version CMake's project(VERSION ...) gives, passed in
 * as SGC_VERSION_{MAJOR,MINOR,PATCH} by libsgcoll/CMakeLists.txt, so that
 * there is one place to change it.  The header's SGCOLL_VERSION_MAJOR and
 * _MINOR (for compile-time checks in callers) are a copy that cannot be
 * generated without making sgcoll.h a configured file; the build fails here
 * when they drift from CMake's.
 */
#include "sgcoll.h"

#if !defined(SGC_VERSION_MAJOR) || !defined(SGC_VERSION_MINOR) || !defined(SGC_VERSION_PATCH)
#error "SGC_VERSION_{MAJOR,MINOR,PATCH} come from project(VERSION ...) in CMakeLists.txt"
#endif

_Static_assert(SGC_VERSION_MAJOR == SGCOLL_VERSION_MAJOR &&
	       SGC_VERSION_MINOR == SGCOLL_VERSION_MINOR,
	       "SGCOLL_VERSION_MAJOR/_MINOR in sgcoll.h differ from project(VERSION) in CMakeLists.txt");
/* sgc_version_number() packs two decimal digits per part. */
_Static_assert(SGC_VERSION_MINOR < 100 && SGC_VERSION_PATCH < 100,
	       "minor and patch must stay below 100 for sgc_version_number()");

#define SGC_STR_(x) #x
#define SGC_STR(x) SGC_STR_(x)

const char *sgc_version(void)
{
	return SGC_STR(SGC_VERSION_MAJOR) "." SGC_STR(SGC_VERSION_MINOR) "."
	       SGC_STR(SGC_VERSION_PATCH);
}

int sgc_version_number(void)
{
	return SGC_VERSION_MAJOR * 10000 + SGC_VERSION_MINOR * 100 + SGC_VERSION_PATCH;
}
