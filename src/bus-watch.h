/* SPDX-License-Identifier: MIT */
/* bus-watch.h — Subscribe()/Unsubscribe() and what a subscription buys: while a client is
 * subscribed, gazelle-schedulerd follows the four task units through systemd and announces
 * every run (TaskStarted/TaskFinished), whoever started it, and does not exit when idle. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "daemon.h"

/* The subscriber tracker and the PropertiesChanged matches of the four units. */
int watch_register(Context *c);

int method_subscribe(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_unsubscribe(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* The only ways TaskStarted/TaskFinished are sent: each run is announced once per signal,
 * whether RunTask's job or the unit watch noticed it first. */
void watch_emit_started(Context *c, const Task *t, const char *run_id, const char *triggered_by);
void watch_emit_finished(Context *c, const Task *t, const char *run_id, const char *status, const char *message);
/* A run whose unit is over while its row still says running: its runner died. Closes the row
 * as interrupted and sends TaskFinished. */
void run_interrupted(Context *c, const Task *t, const char *run_id);
