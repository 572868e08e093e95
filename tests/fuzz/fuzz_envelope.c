/* fuzz_envelope: the queue envelope parser (queue_env_parse) and its writer.
 *
 * The input is the text of an env/<id> file.  When it parses, the envelope
 * is written back with queue_env_write (as the relay rewrites it after
 * each attempt) and parsed again: every field must come back equal, and a
 * second write must give the same bytes as the first (the written form is
 * canonical).  A parse that succeeds on text the writer cannot reproduce
 * would lose recipients or retry state on the relay's next update.
 */
#include <stdlib.h>

#include "../../src/queue.h"
#include "fuzz_util.h"

static int out_fd;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	out_fd = fuzz_memfd("fuzz-envelope-out");
	return 0;
}

static void check_same(const struct envelope *a, const struct envelope *b)
{
	FUZZ_CHECK(strcmp(a->id, b->id) == 0, "id '%s' became '%s'", a->id, b->id);
	FUZZ_CHECK(a->arrived == b->arrived, "arrived %lld became %lld", a->arrived, b->arrived);
	FUZZ_CHECK(strcmp(a->sender, b->sender) == 0, "sender '%s' became '%s'", a->sender, b->sender);
	FUZZ_CHECK(strcmp(a->client, b->client) == 0, "client '%s' became '%s'", a->client, b->client);
	FUZZ_CHECK(a->nrcpt == b->nrcpt, "%d recipients became %d", a->nrcpt, b->nrcpt);
	for (int i = 0; i < a->nrcpt; i++) {
		const struct env_rcpt *x = &a->rcpt[i], *y = &b->rcpt[i];
		FUZZ_CHECK(strcmp(x->address, y->address) == 0, "rcpt %d '%s' became '%s'", i, x->address,
			   y->address);
		FUZZ_CHECK(strcmp(x->user, y->user) == 0, "rcpt %d user '%s' became '%s'", i, x->user, y->user);
		FUZZ_CHECK(x->attempts == y->attempts, "rcpt %d attempts %u became %u", i, x->attempts, y->attempts);
		FUZZ_CHECK(x->next_attempt == y->next_attempt, "rcpt %d next %lld became %lld", i, x->next_attempt,
			   y->next_attempt);
		FUZZ_CHECK(strcmp(x->last_error, y->last_error) == 0, "rcpt %d error '%s' became '%s'", i,
			   x->last_error, y->last_error);
	}
}

static char *write_env(const struct envelope *env, size_t *len)
{
	fuzz_reset_fd(out_fd);
	FUZZ_CHECK(queue_env_write(out_fd, env) == 0, "cannot write a parsed envelope back: %s", strerror(errno));
	return fuzz_slurp(out_fd, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope env, again, third;
	const char *why = NULL;
	size_t len1, len2;

	if (queue_env_parse((const char *)data, size, &env, &why) == -1) {
		FUZZ_CHECK(why && *why, "refused without a reason");
		FUZZ_CHECK(env.rcpt == NULL && env.nrcpt == 0, "refused envelope keeps recipients");
		return 0;
	}
	FUZZ_CHECK(env.id[0] && !strchr(env.id, '/') && env.id[0] != '.', "id '%s' unsafe as a file name", env.id);
	FUZZ_CHECK(env.nrcpt >= 0 && (env.nrcpt == 0 || env.rcpt), "recipient array");
	char *text1 = write_env(&env, &len1);
	why = NULL;
	FUZZ_CHECK(queue_env_parse(text1, len1, &again, &why) == 0, "written envelope does not parse: %s\n%s",
		   why, text1);
	check_same(&env, &again);
	char *text2 = write_env(&again, &len2);
	FUZZ_CHECK(len1 == len2 && memcmp(text1, text2, len1) == 0, "second write differs:\n%s\n---\n%s", text1,
		   text2);
	FUZZ_CHECK(queue_env_parse(text2, len2, &third, &why) == 0, "third parse: %s", why);
	check_same(&env, &third);
	free(text1);
	free(text2);
	queue_env_free(&env);
	queue_env_free(&again);
	queue_env_free(&third);
	return 0;
}
