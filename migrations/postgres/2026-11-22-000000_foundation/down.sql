DROP TABLE events;
DROP TABLE item_controls;
DROP TABLE items;
DROP TABLE systems;
