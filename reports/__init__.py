"""Results of conformance runs: the schema, the writer, and the HTML discrepancy report.

    python -m reports RESULTS... -o report.html   merge results files into one self-contained page
    python -m reports.main                        the main job: run the suite, then write the page
    python -m reports.schema_doc                  regenerate docs/results-schema.md from reports/schema.py
"""
