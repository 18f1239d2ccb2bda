"""The contract between SIAPNET services: documents, signing, codes, regions, errors, outbox."""
