#!/usr/bin/env bash
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Bench contender: one restore made the way the how-to article "Restore PostgreSQL databases by using the Data
# Protection REST API" shows it: plain HTTP requests with curl, one at a time, jq for the JSON. Get a token, list
# the recovery points (following nextLink) and take the latest, POST validateRestore and poll the
# Azure-AsyncOperation URL as the headers say (Retry-After), POST restore and poll it the same way, then GET the
# job until it ends (every Retry-After seconds when the answer has one, else BENCH_POLL). Field names are the
# spec's (datasourceInfo, not the article's dataSourceInfo, which the service rejects). curl --retry honours
# 429 + Retry-After.
#
#   curl_restore.sh restore BACKUP_INSTANCE TARGET_DATABASE   one restore; prints a JSON line at the end
#   curl_restore.sh scale PLAN CONCURRENCY                    PLAN: "backup_instance target_database" lines; one
#                                                             token, one background process per restore
#   curl_restore.sh latest BACKUP_INSTANCE                    list every point, print the latest
#
# Environment: AZURE_CLOUD_ENVIRONMENT (ARM and AAD base URL; https://management.azure.com and
# https://login.microsoftonline.com in Azure), AZURE_TENANT, AZURE_CLIENT_ID, AZURE_SECRET, AZURE_SUBSCRIPTION_ID,
# BENCH_CA (CA file), BENCH_VAULT, BENCH_VAULT_RG, BENCH_TARGET_SERVER_ID, BENCH_SECRET_URI, BENCH_LOCATION,
# BENCH_POLL (s), BENCH_API_VERSION, BENCH_TOKEN (optional: a bearer token to reuse).
set -euo pipefail

BASE=${AZURE_CLOUD_ENVIRONMENT%/}
API=${BENCH_API_VERSION:-2024-04-01}
POLL=${BENCH_POLL:-1}
LOCATION=${BENCH_LOCATION:-westeurope}
CURL=(curl --silent --show-error --cacert "$BENCH_CA" --retry 10 --max-time 120)
BV="/subscriptions/$AZURE_SUBSCRIPTION_ID/resourceGroups/$BENCH_VAULT_RG/providers/Microsoft.DataProtection/backupVaults/$BENCH_VAULT"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
exec 3>&1  # the result line goes to the real stdout, also from inside $(...)

get_token() {  # the secret goes through stdin, not the command line (ps shows arguments)
    printf '%s' "$AZURE_SECRET" | "${CURL[@]}" -X POST "$BASE/$AZURE_TENANT/oauth2/v2.0/token" \
        --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$AZURE_CLIENT_ID" \
        --data-urlencode "client_secret@-" --data-urlencode scope=https://management.azure.com/.default \
        | jq -er .access_token
}

# request METHOD URL [BODY_FILE]: body in $WORK/body, headers in $WORK/headers, HTTP status on stdout
request() {
    local args=(-X "$1" "$2" -H "Authorization: Bearer $TOKEN" -D "$WORK/headers" -o "$WORK/body" -w '%{http_code}')
    if [ -n "${3:-}" ]; then
        args+=(-H 'Content-Type: application/json' --data-binary "@$3")
    fi
    "${CURL[@]}" "${args[@]}"
}

header() {  # header NAME: its value in the last response (case-insensitive), or nothing
    tr -d '\r' < "$WORK/headers" | awk -v name="$(printf '%s' "$1" | tr 'A-Z' 'a-z')" \
        -F': ' 'tolower($1) == name { value = substr($0, length($1) + 3) } END { if (value != "") print value }'
}

fail() {
    printf '{"event":"done","backup_instance":"%s","target_database":"%s","ok":false,"seen":%s,"error":%s}\n' \
        "$BI" "$DB" "$EPOCHREALTIME" "$(printf '%s' "$1" | jq -Rs .)" >&3
    exit 1
}

# wait_operation STATUS_CODE WHAT: follows the 202's Azure-AsyncOperation header; final status body in $WORK/body
wait_operation() {
    [ "$1" = 202 ] || fail "$2: HTTP $1: $(head -c 300 "$WORK/body")"
    local url wait status
    url=$(header Azure-AsyncOperation)
    wait=$(header Retry-After)
    while :; do
        sleep "${wait:-$POLL}"
        code=$(request GET "$url")
        [ "$code" = 200 ] || fail "$2 status: HTTP $code"
        status=$(jq -r .status "$WORK/body")
        case "${status,,}" in
            succeeded) return 0 ;;
            failed|canceled|cancelled) fail "$2: $(jq -c .error "$WORK/body")" ;;
        esac
        wait=$(header Retry-After)
    done
}

latest_point() {  # prints the name of the latest recovery point of $1 (all pages; keeps the best so far)
    local url="$BASE$BV/backupInstances/$1/recoveryPoints?api-version=$API" best="" best_time="" code
    while [ -n "$url" ]; do
        code=$(request GET "$url")
        [ "$code" = 200 ] || fail "list recovery points: HTTP $code"
        read -r best best_time < <(jq -r --arg best "$best" --arg time "$best_time" '
            [.value[] | {n: .name, t: .properties.recoveryPointTime}] + [{n: $best, t: $time}]
            | max_by(.t) | "\(.n) \(.t)"' "$WORK/body")
        url=$(jq -r '.nextLink // empty' "$WORK/body")
    done
    [ -n "$best" ] || fail "no recovery point"
    printf '%s\n' "$best"
}

restore_body() {  # restore_body RECOVERY_POINT DATABASE
    jq -n --arg rp "$1" --arg db "$2" --arg srv "$BENCH_TARGET_SERVER_ID" --arg loc "$LOCATION" \
        --arg secret "$BENCH_SECRET_URI" '
        ($srv | split("/") | last) as $server | "Microsoft.DBforPostgreSQL/servers/databases" as $type |
        {objectType: "AzureBackupRecoveryPointBasedRestoreRequest", recoveryPointId: $rp,
         sourceDataStoreType: "VaultStore",
         restoreTargetInfo: {objectType: "RestoreTargetInfo", recoveryOption: "FailIfExists", restoreLocation: $loc,
           datasourceInfo: {objectType: "Datasource", resourceID: "\($srv)/databases/\($db)", resourceName: $db,
             resourceType: $type, datasourceType: $type, resourceUri: "", resourceLocation: $loc},
           datasourceSetInfo: {objectType: "DatasourceSet", resourceID: $srv, resourceName: $server,
             resourceType: "Microsoft.DBforPostgreSQL/servers", datasourceType: $type, resourceUri: "",
             resourceLocation: $loc},
           datasourceAuthCredentials: {objectType: "SecretStoreBasedAuthCredentials",
             secretStoreResource: {secretStoreType: "AzureKeyVault", uri: $secret}}}}'
}

restore() {
    BI=$1 DB=$2
    TOKEN=${BENCH_TOKEN:-$(get_token)}
    local rp code job_id status polls=0 wait
    rp=$(latest_point "$BI")
    restore_body "$rp" "$DB" > "$WORK/request.json"
    jq '{restoreRequestObject: .}' "$WORK/request.json" > "$WORK/validate.json"
    code=$(request POST "$BASE$BV/backupInstances/$BI/validateRestore?api-version=$API" "$WORK/validate.json")
    wait_operation "$code" validateRestore
    code=$(request POST "$BASE$BV/backupInstances/$BI/restore?api-version=$API" "$WORK/request.json")
    wait_operation "$code" restore
    job_id=$(jq -er .properties.jobId "$WORK/body")
    while :; do
        code=$(request GET "$BASE$job_id?api-version=$API")
        polls=$((polls + 1))
        [ "$code" = 200 ] || fail "get job: HTTP $code"
        status=$(jq -r .properties.status "$WORK/body")
        case "${status,,}" in
            completed|succeeded|completedwithwarnings|failed|cancelled|canceled) break ;;
        esac
        wait=$(header Retry-After)
        sleep "${wait:-$POLL}"
    done
    local ok=false
    case "${status,,}" in completed|succeeded|completedwithwarnings) ok=true ;; esac
    printf '{"event":"done","backup_instance":"%s","target_database":"%s","job_id":"%s","status":"%s","ok":%s,"seen":%s,"job_polls":%d}\n' \
        "$BI" "$DB" "${job_id##*/}" "$status" "$ok" "$EPOCHREALTIME" "$polls"
    [ "$ok" = true ]
}

scale() {  # scale PLAN CONCURRENCY: one token for all, at most CONCURRENCY restores in the background at once
    local plan=$1 limit=$2 running=0 failures=0 total=0 bi db
    BENCH_TOKEN=$(get_token)
    export BENCH_TOKEN
    while read -r bi db; do
        [ -n "$bi" ] || continue
        if [ "$running" -ge "$limit" ]; then
            wait -n || failures=$((failures + 1))
            running=$((running - 1))
        fi
        "$0" restore "$bi" "$db" &
        running=$((running + 1)) total=$((total + 1))
    done < "$plan"
    while [ "$running" -gt 0 ]; do
        wait -n || failures=$((failures + 1))
        running=$((running - 1))
    done
    printf '{"event":"summary","restores":%d,"failures":%d}\n' "$total" "$failures"
    [ "$failures" = 0 ]
}

latest() {
    BI=$1 DB=""
    TOKEN=$(get_token)
    local start=$EPOCHREALTIME rp
    rp=$(latest_point "$1")
    printf '{"event":"latest","recovery_point_id":"%s","seconds":%s}\n' "$rp" \
        "$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')"
}

case "${1:-}" in
    restore) restore "$2" "$3" ;;
    scale) scale "$2" "$3" ;;
    latest) latest "$2" ;;
    *) echo "usage: $0 restore BACKUP_INSTANCE TARGET_DATABASE | scale PLAN CONCURRENCY | latest BACKUP_INSTANCE" >&2; exit 2 ;;
esac
