"""Faces: find and describe the faces in each photo, group them into people, and name the people."""
