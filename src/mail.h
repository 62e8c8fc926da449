/* SPDX-License-Identifier: MIT */
/* mail.h — outgoing mail: RFC 5322/MIME composition (text and HTML alternatives, UTF-8) and the
 * three transports: SendGrid v3 (HTTP API), SMTP(S) through libcurl, and an outbox
 * directory of .eml files. A send says exactly what happened: accepted by the provider, queued
 * in the outbox, refused (nothing was delivered: safe to send again later), or uncertain (the
 * request may have reached the provider: sending again could duplicate). Library layer: no
 * logging, errors in MailResult.error, never a secret in them. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "settings.h"
#include "timeutil.h"

#define MAIL_ERROR_MAX 512

typedef struct MailMessage {
        const char *from_email;
        const char *from_name;  /* UTF-8, may be NULL */
        const char *to_email;   /* one recipient */
        const char *subject;    /* UTF-8 */
        const char *text;       /* UTF-8 plain text, '\n' line ends */
        const char *html;       /* UTF-8 HTML document, or NULL for text only */
} MailMessage;

/* The whole message with CRLF line ends: Date (Montréal time), From, To, Subject (RFC 2047 when
 * not ASCII), Message-ID, MIME-Version, multipart/alternative with base64 UTF-8 parts. The
 * Message-ID (with angle brackets) is returned too when ret_message_id is not NULL. */
int mail_compose(const MailMessage *m, usec_t date, char **ret, char **ret_message_id);

/* HTML text escaping of & < > " '; owned result. */
char *html_escape(const char *s);

/* Whether an address is a plausible single mailbox (no spaces, no header-breaking characters,
 * one '@' with text on both sides). Keeps CR/LF and friends out of the headers. */
bool mail_address_valid(const char *s);

typedef enum MailOutcome {
        MAIL_SENT,       /* a provider accepted it (SendGrid 2xx, SMTP 250 after DATA) */
        MAIL_QUEUED,     /* written to the outbox: nobody has received anything yet */
        MAIL_REFUSED,    /* not accepted, definitely: may be sent again */
        MAIL_UNCERTAIN,  /* it may have been accepted (timeout, connection lost mid-request) */
} MailOutcome;

typedef struct MailResult {
        MailOutcome outcome;
        char *provider_id;      /* X-Message-Id, the Message-ID, or the .eml file name; owned */
        unsigned attempts;
        char error[MAIL_ERROR_MAX];
} MailResult;

void mail_result_clear(MailResult *r);
const char *mail_outcome_to_string(MailOutcome o);

typedef struct Mailer Mailer;

/* Picks and checks the transport (settings: transport, sender, outbox_dir; configuration:
 * SENDGRID_API_URL, SMTP_URL; secrets: sendgrid-api-key/SENDGRID_API_KEY,
 * smtp-username/SMTP_USERNAME, smtp-password/SMTP_PASSWORD). The state directory holds the
 * default outbox. -EINVAL with one line in error naming the setting when something is missing. */
int mailer_new(const Config *config, const volatile sig_atomic_t *cancelled, Mailer **ret, char *error,
               size_t error_size);
Mailer *mailer_free(Mailer *m);
static inline void mailer_freep(Mailer **m) {
        if (*m)
                mailer_free(*m);
}

/* "sendgrid", "smtp" or "outbox". */
const char *mailer_transport(const Mailer *m);
/* The configured sender; messages sent through the mailer should use these. */
const char *mailer_from_email(const Mailer *m);
const char *mailer_from_name(const Mailer *m);

/* Sends one message. 0 when sent or queued; otherwise -errno with r->outcome REFUSED or
 * UNCERTAIN and r->error set. Retries 429/5xx and refused connections with backoff, never 4xx
 * and never an uncertain attempt; once a send ran out of retries the provider is taken as down
 * and later sends of the same mailer get one attempt each. */
int mailer_send(Mailer *m, const MailMessage *msg, MailResult *r);
