/* SPDX-License-Identifier: MIT */
/* main.c — gazelle-scheduler entry point: process-wide set-up, then the CLI. */
#include <signal.h>
#include <sys/stat.h>

#include "cli.h"
#include "journal.h"
#include "timeutil.h"

int main(int argc, char **argv) {
        tz_init();
        log_set_identifier("gazelle-scheduler");
        /* A file-size limit must fail a write with EFBIG (reported), not kill the run. */
        signal(SIGXFSZ, SIG_IGN);
        /* Stores, backups and locks hold personal data: nobody else reads them. */
        umask(0077);
        return cli_main(argc, argv);
}
