"""The web app around the recognition library (emotion_core): the page service, uploads and their route, the
guards, theme, page text, the game, plots, report figures, examples and explanations. app.py lays the page out
and wires its events; everything else the page does lives here."""
