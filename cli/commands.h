/* commands.h - entry points of fenta's subcommands (cli/fenta.c dispatches). */
#ifndef FENTA_COMMANDS_H
#define FENTA_COMMANDS_H

#define FENTA_VERSION "0.1.0"

int cmd_demo(int argc, char **argv);
int cmd_render(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_openapi(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_migrate(int argc, char **argv);

/* Loads NAME from the schemas directory dir (message on stderr and NULL on
 * failure). */
struct json_t;
struct json_t *cli_load_json(const char *dir, const char *name);

#endif
