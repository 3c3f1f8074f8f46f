"""file.write and file.read: files confined to AUTOMATION_FILES_ROOT."""
