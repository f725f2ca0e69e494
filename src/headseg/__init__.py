"""headseg: head cutouts for every portrait uploaded to an OSS bucket, with imageseg SegmentHead."""

__version__ = "0.1.0"
