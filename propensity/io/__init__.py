"""Files: the training data reader, model documents, the manifest of a model folder and
the one way of writing a file or a folder of outputs without ever leaving half of one."""
