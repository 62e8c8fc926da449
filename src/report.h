/* SPDX-License-Identifier: MIT */
/* report.h — the Rapport Timeline task (README, "Rapport Timeline"): the institutions' service history built
 * from the store in one streamed query, one CSV per tab under <state dir>/reports/YYYY-MM-DD/,
 * and, when a service account and a spreadsheet are configured, the same cells in Google Sheets. */
#pragma once

#include <stdint.h>
#include <stdio.h>

#include "db.h"
#include "runner.h"
#include "settings.h"

#define REPORT_COLUMNS 12
#define REPORT_ALERT_COLUMNS (REPORT_COLUMNS + 2)
#define REPORT_ALERTS_TITLE "Alertes Maintenance"
#define REPORT_KEEP_DAYS 30
/* Google Sheets refuses longer cells; the CSV keeps the same text so both agree. */
#define REPORT_CELL_MAX 50000

extern const char *const report_columns[REPORT_COLUMNS];
extern const char *const report_alert_columns[REPORT_ALERT_COLUMNS];

typedef struct ReportTab {
        char *title;     /* tab title, "Vincent d'Indy" */
        char *file;      /* CSV file name in the day's directory, "vincent-d-indy.csv" */
        uint64_t rows;   /* data rows, header excluded */
} ReportTab;

typedef struct ReportResult {
        ReportTab *tabs;  /* the institutions in configured order, then Alertes Maintenance */
        size_t n_tabs;
        uint64_t entries;      /* timeline entries read */
        uint64_t folded;       /* measurements folded into a service row */
        uint64_t duplicates;   /* entries dropped as duplicates (same day, piano, text) */
        char error[512];       /* set when building fails */
} ReportResult;

void report_result_clear(ReportResult *r);

/* Builds every tab into CSV files in dir (which must exist). Memory stays flat: one Montréal
 * day of one query's rows at a time. 0 or -errno with r->error set. */
int report_build(Db *db, const Settings *settings, const char *dir, const volatile sig_atomic_t *cancelled,
                 ReportResult *r);

/* "21°, 45%", "21°" or "45%" from a measurement's text (°F, or any temperature above 50,
 * converted to °C); NULL when the text holds neither. Owned result. */
char *report_humidity_from_text(const char *text);

/* The first configured keyword found in text, accent- and case-insensitively, or NULL. */
const char *report_match_keyword(char *const *keywords, const char *text);

/* Lowercase ASCII slug of a tab title for its CSV file name ("Vincent d'Indy" → "vincent-d-indy"). */
char *report_file_slug(const char *title);

/* Keeps the day directories (YYYY-MM-DD) of the last `keep` days up to today, deletes older
 * ones and stale temporaries; nothing else in reports_dir is touched. */
int report_retention(const char *reports_dir, LocalDate today, unsigned keep, unsigned *deleted);

int report_task_run(RunContext *ctx, TaskResult *result);
