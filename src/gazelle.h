/* SPDX-License-Identifier: MIT */
/* gazelle.h — the Gazelle API client (private GraphQL API): authentication (OAuth
 * authorization code and refresh token, tokens kept in the store, a rotated refresh token
 * committed before the new access token is used, refresh ahead of expiry and on a 401 — a request
 * that left with an older token than the current one is only resent; or an API key), GraphQL requests with variables where any `errors` entry fails the request, and
 * pagination by pageInfo over http.h's curl multi. Library layer: -errno plus a French one-line
 * error (method, host, path, status, the server's text; never a token); never logs. */
#pragma once

#include <cjson/cJSON.h>
#include <signal.h>

#include "config.h"
#include "db.h"
#include "http.h"

#define GAZELLE_ERROR_MAX 640
#define GAZELLE_PAGE_SIZE 100

typedef struct GazelleClient GazelleClient;

/* Takes GAZELLE_API_URL, GAZELLE_TOKEN_URL, GAZELLE_MAX_CONCURRENCY, GAZELLE_HTTP_* from config, reads the
 * secrets (API key, or client id and secret); loads the stored tokens when in OAuth mode.
 * -EINVAL with error naming the setting when something is wrong or missing. */
int gazelle_client_new(const Config *config, Db *db, GazelleClient **ret, char *error, size_t error_size);
GazelleClient *gazelle_client_free(GazelleClient *g);
DEFINE_TRIVIAL_CLEANUP_FUNC(GazelleClient *, gazelle_client_free);

void gazelle_set_cancel(GazelleClient *g, const volatile sig_atomic_t *cancelled);
unsigned gazelle_max_concurrency(const GazelleClient *g);
/* Requests made (every attempt, token requests included) and retries among them. */
void gazelle_counters(const GazelleClient *g, unsigned *ret_requests, unsigned *ret_retries);
/* "host/path" of the GraphQL endpoint, for messages. */
const char *gazelle_endpoint(const GazelleClient *g);

/* Makes sure a usable access token is at hand (OAuth: refreshes when none is stored or it expires
 * within a few minutes). Call before a run to fail early with a clear message. */
int gazelle_authenticate(GazelleClient *g, char *error, size_t error_size);

/* Pagination. page() gets each page's `nodes` array in order and owns it (cJSON_Delete), after
 * the next page has been requested, so the caller's work can overlap the transfer; it returns
 * 0, or -errno with error set to stop the pagination. end() runs exactly once: 0 after the last
 * page, or -errno with the reason. Both run from gazelle_run(). variables is taken over. */
typedef int (*GazellePageFunc)(void *userdata, cJSON *nodes, char *error, size_t error_size);
typedef void (*GazelleEndFunc)(void *userdata, int r, const char *error);
int gazelle_paginate(GazelleClient *g, const char *query, const char *field, cJSON *variables,
                     GazellePageFunc page, GazelleEndFunc end, void *userdata);
/* Drives every pagination to its end, at most GAZELLE_MAX_CONCURRENCY requests at once. */
int gazelle_run(GazelleClient *g);

/* For `gazelle-scheduler auth`: whether the client is in API-key mode (no OAuth tokens), and
 * until when the current access token is valid. */
bool gazelle_uses_api_key(const GazelleClient *g);
usec_t gazelle_access_expires_at(const GazelleClient *g);
/* Exchanges an authorization code (GAZELLE_REDIRECT_URI as redirect URI) for tokens, saved in
 * the store. */
int gazelle_exchange_code(GazelleClient *g, const char *code, char *error, size_t error_size);
/* Imports a refresh token (another system's) by refreshing with it at once; *ret_rotated tells
 * whether Gazelle replaced it (the old holder is then cut off). */
int gazelle_import_refresh_token(GazelleClient *g, const char *refresh_token, bool *ret_rotated, char *error,
                                 size_t error_size);
