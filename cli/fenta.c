/* fenta.c - the one binary: a table of subcommands and their help. */
#include "cli/commands.h"

#include <stdio.h>
#include <string.h>

/* Subcommands are data: name, one-line summary, entry point. */
static const struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"demo",
     "run a supervised actor pipeline with a failing child and show retries, "
     "dead letters and replay",
     cmd_demo},
    {"render", "render a short from a render spec into a folder (mp4, srt, thumbnail)",
     cmd_render},
    {"serve", "run the API (and the actor runtime) until SIGTERM", cmd_serve},
    {"migrate", "apply the database migrations and exit", cmd_migrate},
    {"openapi", "print the OpenAPI document (or --check a file against it)", cmd_openapi},
    {"version", "print the version", cmd_version},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: fenta <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'fenta <command> --help' explains a command's options.\n");
}

int cmd_version(int argc, char **argv)
{
    (void)argc, (void)argv;
    printf("fenta %s\n", FENTA_VERSION);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "fenta: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}

/* LeakSanitizer (ASan builds): h2o keeps freed buffers in per-thread caches
 * that it never releases when a loop thread exits; not ours to free. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\n";
}
