"""Intake: receives an office's signed recommendation, verifies and stores it, answers with a
signed receipt and hands it on to the provincial recommendation service through the outbox."""
