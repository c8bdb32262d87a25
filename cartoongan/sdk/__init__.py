"""Runtime SDK: runs exported models without torch."""
