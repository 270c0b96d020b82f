"""The SQL of the bulk prepare step: JSON lines -> documents -> dated events, in DuckDB.

Each rule here restates one rule of the per-document parsers (pipeline/parse/) for the two
bulk shapes, and only where it can be stated exactly; every value outside the formats
written here marks its document *odd*, and an odd document is read by the per-document path
instead. So the bulk path never decides anything the parsers would decide otherwise: it is
the same funnel, faster for the documents it can vouch for.

What the per-document path does and this SQL mirrors:
  * orjson is strict: DuckDB also accepts trailing commas, NaN/Infinity and numbers beyond a
    double; lines with anything like that are odd (LENIENT_JSON).
  * orjson keeps the last of duplicate keys, DuckDB the first: a duplicate key at the top or
    in the answer's body is odd (inside one history entry it is not checked: known gap).
  * date_in_text(clean_text(description)): the same regular expression; a description with
    an entity, a tag or a non-ASCII character before the date is odd, since clean_text could
    change what the expression finds there.
"""

from __future__ import annotations

from pipeline.parse.fields import _MONTHS
from pipeline.parse.myuscis import _DETAIL_KEYS, _STATUS_KEYS, WRAPPER_KEYS


def _has_any(keys: str, values: set[str]) -> str:
    """list_has_any(keys, [values]) as one list_has per value: the same answer (NULL where
    keys is NULL), in a third of the time (DuckDB builds the literal list for every row)."""
    return "(" + " OR ".join(f"list_has({keys}, '{v}')" for v in sorted(values)) + ")"


def _how_many_of(keys: str, values: set[str]) -> str:
    """How many of values are in keys: with no key twice in keys, it equals len(keys) exactly
    when list_has_all([values], keys); three times faster, like `_has_any`."""
    return "(" + " + ".join(f"list_has({keys}, '{v}')::INT" for v in sorted(values)) + ")"


def literal(text: str) -> str:
    """A string as an SQL literal."""
    return "'" + text.replace("'", "''") + "'"


def render(sql: str, **values: str | int) -> str:
    """The SQL with each $name replaced by its value (strings as literals, longest names first)."""
    for name in sorted(values, key=len, reverse=True):
        value = values[name]
        sql = sql.replace(f"${name}", literal(value) if isinstance(value, str) else str(value))
    return sql


# Keys that make the per-document dispatcher read a {"case_status": ...} line as myUSCIS JSON
# or as an error answer; a body holding one is left to it.
_API_BODY_TRIGGERS = _STATUS_KEYS | _DETAIL_KEYS | {"receipt_details", "location", "events", "data"}
_API_TOP_TRIGGERS = {"fault", "CaseStatusResponse", "data"}
# Wrapper keys that may sit beside "data" without the answer being an error.
_MYUSCIS_TOP_ALLOWED = WRAPPER_KEYS - {"error", "errors"}

SHAPE = """{
  "case_status": {"receiptNumber": "VARCHAR", "formType": "VARCHAR", "submittedDate": "VARCHAR",
                  "modifiedDate": "VARCHAR", "current_case_status_text_en": "VARCHAR",
                  "current_case_status_desc_en": "VARCHAR",
                  "hist_case_status": [{"date": "VARCHAR", "completed_text_en": "VARCHAR"}]},
  "data": {"receiptNumber": "VARCHAR", "formType": "VARCHAR", "currentActionCodeDate": "VARCHAR",
           "statusTitle": "VARCHAR", "jurisdiction": "VARCHAR", "jurisdictionDescription": "VARCHAR",
           "isPremiumProcessed": "VARCHAR",
           "historicalCaseStatuses": [{"date": "VARCHAR", "statusTitle": "VARCHAR"}]},
  "_synthetic": "JSON"
}"""

# JSON orjson refuses but DuckDB reads: a comma before a closing bracket, NaN or Infinity, a
# number too large for a double. Written broadly (a false alarm only costs speed), but each
# alternative starts where a JSON value or a closing bracket can follow (after ':', '[' or
# ','), which lets the regex engine skip ahead to those bytes: 2.7x faster than matching
# digits anywhere, and a long number inside a string is no longer a false alarm.
LENIENT_JSON = (
    r",\s*[\]}]"
    r"|(?i:[:\[,]\s*[-+]?(nan|inf))"
    r"|[:\[,]\s*[-+]?[0-9.]*[eE][+-]?[0-9]{3}"
    r"|[:\[,]\s*[-+]?[0-9.]*[0-9]{300}"
)
_MONTH_GROUP = "(" + "|".join(_MONTHS) + ")"
_MONTH_LIST = "[" + ", ".join(f"'{m}'" for m in _MONTHS) + "]"  # calendar order
# date_in_text's two expressions; the first keeps what lies before the date
ON_DATE = r"(?is)^(.*?)\b(?:on|as of)\s+" + _MONTH_GROUP + r"\s+([0-9]{1,2}),\s*([0-9]{4})"
ANY_DATE = r"(?is)\b" + _MONTH_GROUP + r"\s+([0-9]{1,2}),\s*([0-9]{4})"
# text clean_text leaves as it is: printable ASCII and ASCII blanks, no '&' (entity), no '<' (tag)
SAFE_TEXT = r"[ -%'-;=-~\t\n\r\f]*"
# a VARCHAR that may have been a JSON number, boolean, array or object, not a string
NOT_A_STRING = r"(?s)(true|false|-?[0-9].*|\[.*|\{.*)"

MACROS = rf"""
CREATE OR REPLACE TEMP MACRO text_ok(x) AS x IS NULL OR NOT regexp_full_match(x, '{NOT_A_STRING}');
CREATE OR REPLACE TEMP MACRO day_of(y, m, d) AS CASE WHEN TRY_CAST(y AS INT) >= 1 THEN
  try(make_date(TRY_CAST(y AS INT), list_position({_MONTH_LIST}::VARCHAR[], lower(m))::INT,
                TRY_CAST(d AS INT)))
END;
"""

# The key checks of each shape, on `keys` (the keys of the line, of its case_status and of
# its data). They depend on the keys alone, and a batch holds a few distinct key lists, so
# they are made once per distinct list (BAD_KEYS), not once per line (DOCS about 10 % faster).
_API_KEYS_OK = f"""(NOT {_has_any('keys[1]', _API_TOP_TRIGGERS)}
     AND NOT {_has_any('keys[2]', _API_BODY_TRIGGERS)}
     AND len(keys[1]) = list_unique(keys[1]) AND len(keys[2]) = list_unique(keys[2]))"""
_MYUSCIS_KEYS_OK = f"""(len(keys[1]) = list_unique(keys[1])
     AND len(keys[1]) = {_how_many_of('keys[1]', _MYUSCIS_TOP_ALLOWED)}  -- no key but these
     AND len(keys[3]) = list_unique(keys[3]))"""

# One row per line: which shape it is (NULL: odd) as far as its values tell, the keys that
# BAD_KEYS still checks, and its fields as raw text.
DOCS = r"""
CREATE OR REPLACE TEMP TABLE docs AS
WITH p AS (
  SELECT file, line, text, lenient,
         try(from_json(text, $shape)) AS j,
         try(json_keys(text, ['$', '$.case_status', '$.data'])) AS k
  FROM lines
), s AS (
  SELECT *,
    CASE
      WHEN j IS NULL OR k IS NULL OR lenient THEN NULL
      WHEN j.case_status IS NOT NULL AND k[2] IS NOT NULL
           AND CASE WHEN j.case_status.hist_case_status IS NOT NULL THEN true
                    ELSE NOT list_has(k[2], 'hist_case_status')
                         OR (len(string_split(text, '"hist_case_status"')) = 2
                             AND regexp_matches(text, '"hist_case_status"\s*:\s*null\s*[,}]')) END
        THEN 'case_status_api'
      WHEN j.data IS NOT NULL AND j.case_status IS NULL AND k[3] IS NOT NULL
           AND j.data.historicalCaseStatuses IS NOT NULL
        THEN 'myuscis'
    END AS source
  FROM p
)
SELECT file, line, source, k AS keys,
  coalesce(j.case_status.receiptNumber, j.data.receiptNumber) AS receipt_raw,
  upper(regexp_replace(coalesce(j.case_status.receiptNumber, j.data.receiptNumber), '[\s-]', '', 'g'))
    AS receipt_key,
  coalesce(j.case_status.formType, j.data.formType) AS form_raw,
  j.case_status.submittedDate AS submitted_raw,
  coalesce(j.case_status.modifiedDate, j.data.currentActionCodeDate) AS modified_raw,
  coalesce(j.case_status.current_case_status_text_en, j.data.statusTitle) AS current_title,
  j.case_status.current_case_status_desc_en AS description,
  j.data.jurisdiction AS jurisdiction,
  j.data.jurisdictionDescription AS jurisdiction_description,
  j.data.isPremiumProcessed AS premium_raw,
  CAST(j._synthetic AS VARCHAR) AS synthetic_raw,
  CASE WHEN source = 'case_status_api' THEN j.case_status.hist_case_status END AS api_history,
  CASE WHEN source = 'myuscis' THEN j.data.historicalCaseStatuses END AS myuscis_history
FROM s
"""

# The key lists of the batch that fail their shape's checks. Almost always none; when some
# do, their lines are made odd (KEYS_ODD). Two statements: in one, DuckDB would push the
# checks below the DISTINCT, to every line again.
BAD_KEYS = f"""
CREATE OR REPLACE TEMP TABLE bad_keys AS
SELECT DISTINCT keys, source FROM docs WHERE source IS NOT NULL;
DELETE FROM bad_keys
WHERE coalesce(CASE WHEN source = 'case_status_api' THEN {_API_KEYS_OK} ELSE {_MYUSCIS_KEYS_OK} END, false);
"""
KEYS_ODD = """
CREATE OR REPLACE TEMP TABLE docs AS
SELECT d.* REPLACE (
  CASE WHEN b.keys IS NULL THEN d.source END AS source,
  CASE WHEN b.keys IS NULL THEN d.api_history END AS api_history,
  CASE WHEN b.keys IS NULL THEN d.myuscis_history END AS myuscis_history)
FROM docs d LEFT JOIN bad_keys b ON b.keys = d.keys AND b.source = d.source
"""

HISTORY = r"""
CREATE OR REPLACE TEMP TABLE history AS
SELECT file, line, e.date AS date_raw, coalesce(e.completed_text_en, '') AS text, e IS NULL AS missing
FROM (SELECT file, line, unnest(api_history) AS e FROM docs WHERE api_history IS NOT NULL)
UNION ALL
SELECT file, line, e.date AS date_raw, coalesce(e.statusTitle, '') AS text, e IS NULL AS missing
FROM (SELECT file, line, unnest(myuscis_history) AS e FROM docs WHERE myuscis_history IS NOT NULL)
"""

DISTINCT_TEXTS = """
SELECT DISTINCT text FROM history
UNION SELECT DISTINCT current_title FROM docs WHERE source IS NOT NULL AND current_title <> ''
"""
DISTINCT_FORMS = "SELECT DISTINCT form_raw FROM docs WHERE source IS NOT NULL AND form_raw IS NOT NULL"
DISTINCT_OFFICES = """
SELECT DISTINCT jurisdiction AS raw FROM docs WHERE jurisdiction IS NOT NULL
UNION SELECT DISTINCT jurisdiction_description FROM docs WHERE jurisdiction_description IS NOT NULL
"""
DISTINCT_STAMPS = """
SELECT DISTINCT date_raw FROM history WHERE date_raw IS NOT NULL
UNION SELECT DISTINCT submitted_raw FROM docs WHERE submitted_raw IS NOT NULL
UNION SELECT DISTINCT modified_raw FROM docs WHERE modified_raw IS NOT NULL
"""
DISTINCT_PREMIUM = "SELECT DISTINCT premium_raw FROM docs WHERE premium_raw IS NOT NULL"

# The history's statuses with their dates and our titles; `bad` where either is missing or odd.
DATED_HISTORY = """
SELECT h.file, h.line, s.ts::DATE AS event_date, t.title, t.stage, (h.missing OR s.ts IS NULL OR t.odd) AS bad
FROM history h JOIN titles t ON t.raw = h.text LEFT JOIN stamps s ON s.raw = h.date_raw
"""

# The documents the bulk path takes (`ok`), with every field the way the parsers and
# anonymize_case make it, its pseudonym ($1, $2: the HMAC pads) and its current status as an
# event. One statement: each table written costs about a microsecond a row and column, and
# the candidates and their events are read only here (`cand` is read twice, so DuckDB keeps it).
OK = r"""
CREATE OR REPLACE TEMP TABLE ok AS
WITH d AS (
  SELECT docs.* EXCLUDE (keys, api_history, myuscis_history), s1.ts AS submitted, s2.ts AS modified,
         coalesce(s1.odd, false) OR coalesce(s2.odd, false) AS stamp_odd,
         regexp_extract(description, $on_date, ['pre', 'm', 'd', 'y']) AS on_m
  FROM docs
  LEFT JOIN stamps s1 ON s1.raw = docs.submitted_raw
  LEFT JOIN stamps s2 ON s2.raw = docs.modified_raw
  WHERE source IS NOT NULL
), d1 AS (
  SELECT d.*, CASE WHEN on_m.m = '' THEN regexp_extract(description, $any_date, ['m', 'd', 'y'])
              END AS any_m
  FROM d
), d2 AS (
  SELECT d1.*,
    CASE WHEN description IS NULL THEN NULL
         WHEN on_m.m <> '' THEN day_of(on_m.y, on_m.m, on_m.d)
         WHEN any_m.m <> '' THEN day_of(any_m.y, any_m.m, any_m.d)
    END AS desc_date,
    CASE WHEN description IS NULL THEN true
         WHEN NOT text_ok(description) THEN false
         WHEN on_m.m <> '' THEN regexp_full_match(on_m.pre, $safe)
         ELSE regexp_full_match(description, $safe) END AS desc_ok
  FROM d1
), cand AS MATERIALIZED (
  SELECT d2.* EXCLUDE (on_m, any_m),
    CASE WHEN current_title <> '' THEN coalesce(desc_date, modified::DATE) END AS current_date,
    t.title AS current_canonical, t.stage AS current_stage, coalesce(t.odd, false) AS current_odd
  FROM d2 LEFT JOIN titles t ON t.raw = d2.current_title
), events0 AS (
  SELECT file, line, event_date, stage, bad FROM ($dated_history)
  UNION ALL
  SELECT file, line, current_date, current_stage, false FROM cand WHERE current_date IS NOT NULL
), agg AS (
  SELECT file, line, count(*) AS n_events, bool_or(bad) AS bad, max(event_date) AS latest,
         min(event_date) FILTER (WHERE stage = 'received') AS first_received
  FROM events0 GROUP BY file, line
), dupes AS (
  SELECT receipt_key FROM docs WHERE receipt_key IS NOT NULL GROUP BY 1 HAVING count(*) > 1
), c AS (
  SELECT cand.*, coalesce(agg.n_events, 0) AS n_events, coalesce(agg.bad, false) AS bad_events,
         agg.first_received, agg.latest, i.office AS intake_office,
         CASE WHEN form_raw IS NULL THEN NULL ELSE f.form END AS form,
         coalesce(o1.office, o2.office) AS jurisdiction_office, fl.value AS premium_flag
  FROM cand
  LEFT JOIN agg USING (file, line)
  LEFT JOIN intake_offices i ON i.prefix = left(cand.receipt_raw, 3)
  LEFT JOIN forms f ON f.raw = cand.form_raw
  LEFT JOIN offices o1 ON o1.raw = cand.jurisdiction
  LEFT JOIN offices o2 ON o2.raw = cand.jurisdiction_description
  LEFT JOIN flags fl ON fl.raw = cand.premium_raw
  WHERE regexp_full_match(cand.receipt_raw, '[A-Z]{3}[0-9]{10}')
    AND cand.receipt_key NOT IN (SELECT receipt_key FROM dupes)
), r AS (
  SELECT c.*,
    CASE WHEN source = 'case_status_api' THEN coalesce(submitted::DATE, first_received)
         ELSE first_received END AS received
  FROM c
  WHERE intake_office IS NOT NULL
    AND (form_raw IS NULL OR form IS DISTINCT FROM '?')
    AND NOT stamp_odd AND desc_ok AND NOT current_odd
    AND (synthetic_raw IS NULL OR synthetic_raw IN ('true', 'false'))
    AND NOT bad_events
    AND NOT (source = 'case_status_api' AND n_events = 0 AND submitted IS NULL)
)
SELECT file, line, source, receipt_raw AS receipt,
  -- pseudonymize() in SQL: HMAC-SHA256(key, receipt) = H(outer pad || H(inner pad || receipt))
  'c_' || left(sha256($1::BLOB || unhex(sha256($2::BLOB || receipt_raw::BLOB))), 32) AS case_id,
  form, intake_office,
  CASE WHEN source = 'myuscis' THEN jurisdiction_office END AS current_office,
  CASE WHEN left(receipt_raw, 3) = 'IOE'
       THEN CASE WHEN received IS NULL THEN NULL
                 WHEN month(received) >= 10 THEN year(received) + 1 ELSE year(received) END
       WHEN 2000 + TRY_CAST(substr(receipt_raw, 4, 2) AS INT) <= $max_year
         THEN 2000 + TRY_CAST(substr(receipt_raw, 4, 2) AS INT)
       ELSE 1900 + TRY_CAST(substr(receipt_raw, 4, 2) AS INT)
  END AS fiscal_year,
  received AS received_date,
  CASE WHEN source = 'myuscis' THEN premium_flag END AS premium,
  files.observed_at, modified AS last_modified, coalesce(synthetic_raw = 'true', false) AS synthetic,
  first_received IS NULL AS needs_receipt_event,
  current_date, current_canonical, current_stage,
  -- the latest of the events ALL_EVENTS gives the case
  greatest(latest, CASE WHEN first_received IS NULL THEN received END) AS latest
FROM r JOIN files USING (file)
""".replace("$dated_history", DATED_HISTORY)

# The events of the documents taken: their history, their current status, and a receipt
# event where the history has none.
ALL_EVENTS = r"""
CREATE OR REPLACE TEMP TABLE all_events AS
SELECT file, line, event_date, title, stage FROM ($dated_history) SEMI JOIN ok USING (file, line)
UNION ALL
SELECT file, line, current_date, current_canonical, current_stage FROM ok WHERE current_date IS NOT NULL
UNION ALL
SELECT file, line, received_date, $received_title, 'received' FROM ok
WHERE needs_receipt_event AND received_date IS NOT NULL
""".replace("$dated_history", DATED_HISTORY)
