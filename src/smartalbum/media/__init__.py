"""What is not a still photo: videos, live and motion photos, near-duplicate groups."""
