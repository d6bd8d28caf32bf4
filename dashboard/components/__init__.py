"""Views shared by several pages: images, charts, the trigger view and the live search panel."""
