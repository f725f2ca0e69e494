"""No cloud account: the offline engine (SegmentHead's contract on mediapipe's models), the directory standing
in for a bucket, and the SegmentHead server. Never in the FC code package."""
