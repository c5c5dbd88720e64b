"""On-screen text ("read"): OCR of sampled frames, stored per clip and searched like transcripts.

reader.py   the OCR engine (RapidOCR, PP-OCRv4 ONNX models shipped in its wheel), one thread
frames.py   decode frames for OCR at readable resolution (aspect kept), skipping what is not needed
gate.py     cheap checks before OCR: near-identical to the last frame read, or no text-like strokes
extract.py  a video -> de-duplicated ScreenText spans (text, time range, confidence)
store.py    the screen_text table (FTS5 + text-tower vectors) and search over it
catchup.py  OCR for videos already in the library, without re-embedding them
"""
