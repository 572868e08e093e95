/* tlsbuild: exec the TLS build beside this program (tlsbuild.h). */
#include "tlsbuild.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void tlsbuild_exec(char **argv, const char *progname, char *why, size_t whylen)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - sizeof "-tls");

	if (n > 0) {
		memcpy(self + n, "-tls", sizeof "-tls");
		execv(self, argv);
	}
	snprintf(why, whylen, "TLS is configured, and %s%s cannot be run: %s", n > 0 ? self : progname,
		 n > 0 ? "" : "-tls", strerror(errno));
}
