"""Quality you can measure: FID/KID, content preservation, style statistics, a classical baseline."""
