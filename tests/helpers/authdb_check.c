/* authdb_check: passwd.bats's driver of authdb_check() (src/authdb.c).
 *
 *   authdb_check FILE USER < password
 *   authdb_check -t ROUNDS FILE USER... < password
 *
 * The password is the first line of standard input (newline taken off;
 * no line at all: empty), never an argument.  Prints OK, BAD or
 * "ERROR errno-name: why" and exits 0, 1 or 2.  With -t, each round checks
 * every USER once, in turn, so that a slow moment of the machine falls on
 * all of them alike; then one line per USER: "USER RESULT median-µs" (the
 * median time of one check, measured without a process start in it).
 * Built by the test from src/authdb.c and src/pwfile.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authdb.h"

#define MAX_ROUNDS 51
#define MAX_USERS 8

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int by_value(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

static const char *name(enum authdb_result r)
{
	return r == AUTHDB_OK ? "OK" : r == AUTHDB_BAD ? "BAD" : "ERROR";
}

static int timed(const char *file, char **users, int nusers, int rounds, const char *password)
{
	static long long times[MAX_USERS][MAX_ROUNDS];
	enum authdb_result r[MAX_USERS];
	char why[AUTHDB_WHY_MAX];

	for (int i = 0; i < rounds; i++)
		for (int u = 0; u < nusers; u++) {
			long long t0 = now_us();
			r[u] = authdb_check(file, users[u], password, why, sizeof why);
			times[u][i] = now_us() - t0;
		}
	for (int u = 0; u < nusers; u++) {
		qsort(times[u], (size_t)rounds, sizeof times[u][0], by_value);
		printf("%s %s %lld\n", users[u], name(r[u]), times[u][rounds / 2]);
	}
	return 0;
}

int main(int argc, char **argv)
{
	char password[1024] = "", why[AUTHDB_WHY_MAX];

	if (fgets(password, sizeof password, stdin))
		password[strcspn(password, "\n")] = '\0';
	if (argc >= 5 && strcmp(argv[1], "-t") == 0) {
		int rounds = atoi(argv[2]);
		if (rounds < 1 || rounds > MAX_ROUNDS || argc - 4 > MAX_USERS)
			return 64;
		return timed(argv[3], argv + 4, argc - 4, rounds, password);
	}
	if (argc != 3) {
		fprintf(stderr, "usage: authdb_check FILE USER | -t ROUNDS FILE USER... (password on stdin)\n");
		return 64;
	}
	errno = 0;
	enum authdb_result r = authdb_check(argv[1], argv[2], password, why, sizeof why);
	if (r == AUTHDB_ERROR)
		printf("ERROR %s: %s\n", strerrorname_np(errno) ? strerrorname_np(errno) : "0", why);
	else
		printf("%s\n", name(r));
	return r == AUTHDB_OK ? 0 : r == AUTHDB_BAD ? 1 : 2;
}
