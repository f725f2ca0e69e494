"""No cloud account: the offline engine (SegmentHead's contract on mediapipe's face and person models, run on
LiteRT), the directory standing in for a bucket, and the SegmentHead server. Never in the FC code package."""
