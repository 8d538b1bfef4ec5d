/* commands.h - entry points of fenta's subcommands (cli/fenta.c dispatches). */
#ifndef FENTA_COMMANDS_H
#define FENTA_COMMANDS_H

#define FENTA_VERSION "0.1.0"

int cmd_demo(int argc, char **argv);
int cmd_version(int argc, char **argv);

#endif
