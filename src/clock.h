/* clock: milliseconds of the monotonic clock, for deadlines and timeouts,
 * and a whole wait of some milliseconds (reply pacing, AUTH failures).
 *
 * CLOCK_MONOTONIC does not jump with settimeofday or NTP steps, so a
 * deadline computed from it is never cut short or stretched by a change
 * of the wall clock.  Header only (static inline): the line reader, the
 * lock waits and the relay's client all need it, and none should depend
 * on another for it.
 */
#ifndef MAILSLOT_CLOCK_H
#define MAILSLOT_CLOCK_H

#include <errno.h>
#include <time.h>

static inline long long clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait ms milliseconds in full, a signal's interruption included. */
static inline void clock_sleep_ms(long long ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

#endif
