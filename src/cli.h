/* SPDX-License-Identifier: MIT */
/* cli.h — the gazelle-scheduler command line. */
#pragma once

/* Parses argv, runs the command, returns the process exit code. */
int cli_main(int argc, char **argv);
